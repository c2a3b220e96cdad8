//! Object storage behaves the same on both backends: a local folder and a real S3-compatible server
//! (s3s-fs, started per test, checking signatures). S3-only tests cover credentials and faults;
//! local-only ones cover the folder and `serve_local`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations,
    dead_code
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use heart_core::config::{S3Config, StorageBackend, StorageConfig};
use heart_core::storage::{self, Storage, StorageError};
use heart_testkit::s3::TestS3;
use http_body_util::BodyExt;
use secrecy::SecretString;

fn s3_config(server: &TestS3) -> S3Config {
    S3Config {
        bucket: server.bucket.clone(),
        region: "us-east-1".to_owned(),
        endpoint: Some(server.endpoint.clone()),
        force_path_style: true,
        access_key_id: Some(server.access_key.clone()),
        secret_access_key: Some(SecretString::from(server.secret_key.clone())),
    }
}

async fn s3_storage(config: S3Config) -> Result<Arc<dyn Storage>, StorageError> {
    storage::from_config(&StorageConfig {
        backend: StorageBackend::S3(config),
        public_base_url: "http://media.test".to_owned(),
    })
    .await
}

/// One backend under test, with a way to read what it really stored.
enum Backend {
    Local(tempfile::TempDir),
    S3(TestS3),
}

struct Fixture {
    storage: Arc<dyn Storage>,
    backend: Backend,
}

impl Fixture {
    async fn local() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage::from_config(&StorageConfig {
            backend: StorageBackend::Local {
                dir: dir.path().join("media"),
            },
            public_base_url: "http://127.0.0.1:8080/media".to_owned(),
        })
        .await
        .unwrap();
        Fixture {
            storage,
            backend: Backend::Local(dir),
        }
    }

    async fn s3() -> Fixture {
        let server = TestS3::start().await;
        let storage = s3_storage(s3_config(&server)).await.unwrap();
        Fixture {
            storage,
            backend: Backend::S3(server),
        }
    }

    /// The bytes stored under `key`, read behind the backend's back.
    fn stored(&self, key: &str) -> Option<Vec<u8>> {
        match &self.backend {
            Backend::Local(dir) => std::fs::read(dir.path().join("media").join(key)).ok(),
            Backend::S3(server) => server.object(key),
        }
    }

    async fn put(&self, key: &str, bytes: &'static [u8]) {
        self.storage
            .put(key, Bytes::from_static(bytes), "image/png")
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }
}

/// Each behaviour below runs once per backend.
macro_rules! on_both_backends {
    ($($behaviour:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(&super::Fixture::local().await).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(&super::Fixture::s3().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_stored_object_exists_with_its_bytes,
    putting_again_overwrites_the_object,
    a_deleted_object_is_gone,
    deleting_a_missing_key_is_ok,
    list_returns_every_key_under_a_prefix,
    invalid_keys_are_refused,
    generated_keys_are_accepted,
    reading_streams_the_whole_object_in_chunks,
);

async fn reading_streams_the_whole_object_in_chunks(f: &Fixture) {
    use futures_util::StreamExt as _;
    let key = "posts/2026/11/25/big.jpg";
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    f.storage
        .put(key, Bytes::from(bytes.clone()), "image/jpeg")
        .await
        .unwrap();
    let mut stream = f.storage.read(key).await.unwrap();
    let (mut read, mut chunks) = (Vec::new(), 0);
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert_eq!(read, bytes);
    if let Backend::Local(_) = f.backend {
        assert!(chunks > 1, "read in chunks, not whole");
    }
    assert!(f
        .storage
        .read("posts/2026/11/25/missing.jpg")
        .await
        .is_err());
    assert!(f.storage.read("../escape.png").await.is_err());
}

async fn a_stored_object_exists_with_its_bytes(f: &Fixture) {
    let key = "posts/2026/11/25/abc.png";
    assert!(!f.storage.exists(key).await.unwrap());
    f.put(key, b"\x89PNG first").await;
    assert!(f.storage.exists(key).await.unwrap());
    assert_eq!(f.stored(key).as_deref(), Some(&b"\x89PNG first"[..]));
    assert!(!f
        .storage
        .exists("posts/2026/11/25/other.png")
        .await
        .unwrap());
}

async fn putting_again_overwrites_the_object(f: &Fixture) {
    let key = "avatars/2026/11/25/me.png";
    f.put(key, b"old bytes, longer than the new ones").await;
    f.put(key, b"new").await;
    assert_eq!(f.stored(key).as_deref(), Some(&b"new"[..]));
    assert_eq!(f.storage.list("").await.unwrap(), [key]);
}

async fn a_deleted_object_is_gone(f: &Fixture) {
    f.put("posts/a.png", b"a").await;
    f.put("posts/b.png", b"b").await;
    f.storage.delete("posts/a.png").await.unwrap();
    assert!(!f.storage.exists("posts/a.png").await.unwrap());
    assert_eq!(f.stored("posts/a.png"), None);
    assert_eq!(f.storage.list("").await.unwrap(), ["posts/b.png"]);
}

async fn deleting_a_missing_key_is_ok(f: &Fixture) {
    f.storage.delete("posts/never/stored.png").await.unwrap();
    f.put("posts/once.png", b"x").await;
    f.storage.delete("posts/once.png").await.unwrap();
    f.storage.delete("posts/once.png").await.unwrap();
}

async fn list_returns_every_key_under_a_prefix(f: &Fixture) {
    assert!(f.storage.list("").await.unwrap().is_empty());
    for key in [
        "posts/2026/11/25/b.jpg",
        "posts/2026/11/24/a.jpg",
        "avatars/2026/11/25/c.png",
        "postscript.gif",
    ] {
        f.put(key, b"x").await;
    }
    assert_eq!(
        f.storage.list("posts/").await.unwrap(),
        ["posts/2026/11/24/a.jpg", "posts/2026/11/25/b.jpg"]
    );
    assert_eq!(
        f.storage.list("avatars/").await.unwrap(),
        ["avatars/2026/11/25/c.png"]
    );
    assert_eq!(f.storage.list("").await.unwrap().len(), 4);
    assert!(f.storage.list("nothing/").await.unwrap().is_empty());
}

async fn invalid_keys_are_refused(f: &Fixture) {
    for key in [
        "../escape.png",
        "posts/../../escape.png",
        "/etc/passwd",
        "posts//a.png",
        "posts/./a.png",
        "posts/a b.png",
        "",
    ] {
        let put = f
            .storage
            .put(key, Bytes::from_static(b"x"), "image/png")
            .await;
        assert!(put.is_err(), "put {key:?} was accepted");
        assert!(f.storage.exists(key).await.is_err(), "exists {key:?}");
        assert!(f.storage.delete(key).await.is_err(), "delete {key:?}");
    }
    assert!(f.storage.list("").await.unwrap().is_empty());
    if let Backend::Local(dir) = &f.backend {
        assert!(!dir.path().join("escape.png").exists());
    }
}

async fn generated_keys_are_accepted(f: &Fixture) {
    let key = storage::object_key("posts", 1_795_651_199, "webp");
    f.put(&key, b"RIFF").await;
    assert_eq!(f.storage.list("posts/2026/11/25/").await.unwrap(), [key]);
}

#[tokio::test]
async fn backends_name_themselves() {
    assert_eq!(Fixture::local().await.storage.backend(), "local");
    assert_eq!(Fixture::s3().await.storage.backend(), "s3");
}

#[tokio::test]
async fn the_s3_server_holds_what_the_app_stored() {
    let f = Fixture::s3().await;
    f.put("posts/x.png", b"png").await;
    let Backend::S3(server) = &f.backend else {
        unreachable!()
    };
    assert_eq!(server.keys(), ["posts/x.png"]);
}

/// A plain SDK client for `server`, to look at objects as any S3 client would.
fn raw_s3_client(server: &TestS3) -> aws_sdk_s3::Client {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &server.access_key,
            &server.secret_key,
            None,
            None,
            "test",
        ))
        .http_client(http_client)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test]
async fn s3_objects_carry_their_content_type_and_immutable_caching() {
    let f = Fixture::s3().await;
    let Backend::S3(server) = &f.backend else {
        unreachable!()
    };
    f.storage
        .put("posts/a.webp", Bytes::from_static(b"RIFF"), "image/webp")
        .await
        .unwrap();
    let head = raw_s3_client(server)
        .head_object()
        .bucket(&server.bucket)
        .key("posts/a.webp")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/webp"));
    assert_eq!(
        head.cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(head.content_length(), Some(4));
}

#[tokio::test]
async fn s3_refuses_a_wrong_secret_key() {
    let server = TestS3::start().await;
    let mut config = s3_config(&server);
    config.secret_access_key = Some(SecretString::from("not-the-secret".to_owned()));
    let storage = s3_storage(config).await.unwrap();
    let put = storage
        .put("posts/a.png", Bytes::from_static(b"x"), "image/png")
        .await;
    let error = put.expect_err("a request signed with the wrong secret was accepted");
    assert!(error.to_string().contains("PutObject"), "{error}");
    assert!(storage.list("").await.is_err());
    assert!(storage.exists("posts/a.png").await.is_err());
    assert!(storage.delete("posts/a.png").await.is_err());
    assert!(server.keys().is_empty());
}

#[tokio::test]
async fn s3_refuses_an_unknown_access_key() {
    let server = TestS3::start().await;
    let mut config = s3_config(&server);
    config.access_key_id = Some("AKIAUNKNOWNUNKNOWN00".to_owned());
    let storage = s3_storage(config).await.unwrap();
    assert!(storage
        .put("posts/a.png", Bytes::from_static(b"x"), "image/png")
        .await
        .is_err());
    assert!(server.keys().is_empty());
}

#[tokio::test]
async fn half_configured_static_keys_are_refused() {
    let server = TestS3::start().await;
    let mut config = s3_config(&server);
    config.secret_access_key = None;
    assert!(s3_storage(config).await.is_err());
}

#[tokio::test]
async fn failing_puts_surface_as_storage_errors() {
    let f = Fixture::s3().await;
    let Backend::S3(server) = &f.backend else {
        unreachable!()
    };
    server.fail_puts_after(1);
    f.put("posts/1.png", b"1").await;
    let second = f
        .storage
        .put("posts/2.png", Bytes::from_static(b"2"), "image/png")
        .await;
    assert!(second.is_err(), "the injected fault did not surface");
    assert_eq!(server.keys(), ["posts/1.png"]);
    server.heal();
    f.put("posts/2.png", b"2").await;
    assert_eq!(server.keys(), ["posts/1.png", "posts/2.png"]);
}

#[tokio::test]
async fn failing_deletes_surface_as_storage_errors() {
    let f = Fixture::s3().await;
    let Backend::S3(server) = &f.backend else {
        unreachable!()
    };
    f.put("posts/1.png", b"1").await;
    server.fail_deletes(true);
    assert!(f.storage.delete("posts/1.png").await.is_err());
    assert_eq!(server.keys(), ["posts/1.png"]);
    // Reads still work while deletes fail.
    assert!(f.storage.exists("posts/1.png").await.unwrap());
    server.fail_deletes(false);
    f.storage.delete("posts/1.png").await.unwrap();
    assert!(server.keys().is_empty());
}

#[tokio::test]
async fn a_stopped_s3_fails_fast_and_works_again_once_resumed() {
    let f = Fixture::s3().await;
    let Backend::S3(server) = &f.backend else {
        unreachable!()
    };
    f.put("posts/1.png", b"1").await;
    server.stop();
    let started = Instant::now();
    let put = f
        .storage
        .put("posts/2.png", Bytes::from_static(b"2"), "image/png")
        .await;
    assert!(put.is_err());
    assert!(f.storage.exists("posts/1.png").await.is_err());
    assert!(f.storage.delete("posts/1.png").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    server.resume();
    // The storage's breaker closes after its background probe reaches S3 again (no restart).
    let resumed = Instant::now();
    while f
        .storage
        .put("posts/2.png", Bytes::from_static(b"2"), "image/png")
        .await
        .is_err()
    {
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "S3 still refused {:?} after it came back",
            resumed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.keys(), ["posts/1.png", "posts/2.png"]);
}

#[tokio::test]
async fn an_unreachable_s3_fails_fast() {
    // A port that was just free: connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let storage = s3_storage(S3Config {
        bucket: "heart-media".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(endpoint),
        force_path_style: true,
        access_key_id: Some("AKIAEXAMPLE".to_owned()),
        secret_access_key: Some(SecretString::from("secret".to_owned())),
    })
    .await
    .unwrap();
    let started = Instant::now();
    let put = storage
        .put("posts/a.png", Bytes::from_static(b"x"), "image/png")
        .await;
    assert!(put.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_hung_s3_times_out_within_seconds() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let storage = s3_storage(S3Config {
        bucket: "heart-media".to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(endpoint),
        force_path_style: true,
        access_key_id: Some("AKIAEXAMPLE".to_owned()),
        secret_access_key: Some(SecretString::from("secret".to_owned())),
    })
    .await
    .unwrap();
    let started = Instant::now();
    assert!(storage.exists("posts/a.png").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    hold.abort();
}

#[tokio::test]
async fn local_writes_leave_no_temporary_files() {
    let f = Fixture::local().await;
    for i in 0..5 {
        f.put(
            "posts/2026/11/25/same.png",
            if i % 2 == 0 { b"even" } else { b"odd!" },
        )
        .await;
    }
    let Backend::Local(dir) = &f.backend else {
        unreachable!()
    };
    let folder = dir.path().join("media/posts/2026/11/25");
    let names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["same.png"]);
}

#[tokio::test]
async fn local_storage_creates_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("deep/media");
    storage::from_config(&StorageConfig {
        backend: StorageBackend::Local { dir: media.clone() },
        public_base_url: "http://x/media".to_owned(),
    })
    .await
    .unwrap();
    assert!(media.is_dir());
}

struct Served {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn serve(dir: &std::path::Path, key: &str) -> Served {
    let response = storage::serve_local(dir, key).await;
    let (parts, body) = response.into_parts();
    Served {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

fn header<'a>(served: &'a Served, name: &str) -> &'a str {
    served
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

#[tokio::test]
async fn serve_local_answers_images_with_immutable_caching() {
    let dir = tempfile::tempdir().unwrap();
    let local = storage::LocalStorage::new(dir.path().to_owned());
    for (key, content_type) in [
        ("posts/2026/11/25/a.png", "image/png"),
        ("posts/2026/11/25/b.jpg", "image/jpeg"),
        ("posts/2026/11/25/c.webp", "image/webp"),
        ("avatars/2026/11/25/d.gif", "image/gif"),
    ] {
        local
            .put(key, Bytes::from_static(b"image bytes"), content_type)
            .await
            .unwrap();
        let served = serve(local.dir(), key).await;
        assert_eq!(served.status, StatusCode::OK, "{key}");
        assert_eq!(served.body, b"image bytes");
        assert_eq!(header(&served, "content-type"), content_type);
        assert_eq!(
            header(&served, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&served, "x-content-type-options"), "nosniff");
    }
}

fn assert_contract_404(served: &Served, what: &str) {
    assert_eq!(served.status, StatusCode::NOT_FOUND, "{what}");
    assert!(
        header(served, "content-type").starts_with("application/json"),
        "{what}"
    );
    let body: serde_json::Value = serde_json::from_slice(&served.body).unwrap();
    assert_eq!(body["code"], "GLOBAL_001", "{what}: {body}");
    assert_eq!(body["status"], 404, "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
    assert!(
        served.headers.get("cache-control").is_none(),
        "{what}: a 404 must not be cached forever"
    );
}

#[tokio::test]
async fn serve_local_answers_the_contract_404_for_missing_and_invalid_keys() {
    let root = tempfile::tempdir().unwrap();
    let media = root.path().join("media");
    std::fs::create_dir_all(media.join("posts/dir.png")).unwrap();
    std::fs::write(root.path().join("secret.png"), b"outside").unwrap();
    std::fs::write(media.join("page.html"), b"<script>").unwrap();
    for key in [
        "posts/missing.png",
        "../secret.png",
        "posts/../../secret.png",
        "/etc/passwd",
        "posts/dir.png",
        "page.html",
        "",
    ] {
        assert_contract_404(&serve(&media, key).await, key);
    }
}
