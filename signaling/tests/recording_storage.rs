//! Recording storage against a real S3 server: s3s-fs (built by scripts/install-test-deps.sh into
//! .tools/bin), started per test on a free loopback port over a temporary directory, with an
//! access key and secret so it checks every request's SigV4 signature. Also the `file://` backend.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ringcast_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use signaling::recording::storage::{
    RecordingStorage, RetryPolicy, StorageConfig, StorageCredentials, StorageError,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringcast-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The store's storage for `bucket`, with the store's credentials.
fn storage(server: &S3Server, bucket: &str) -> RecordingStorage {
    let env = |name: &str| match name {
        "RECORDING_ACCESS_KEY" => Some(ACCESS_KEY.to_owned()),
        "RECORDING_SECRET_KEY" => Some(SECRET_KEY.to_owned()),
        _ => None,
    };
    RecordingStorage::from_env(&server.storage_url(bucket), &env).expect("storage config")
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// GETs `url` with a plain HTTP client (no credentials of its own).
async fn plain_get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("GET the presigned URL")
}

#[tokio::test]
async fn ensure_bucket_creates_a_missing_bucket_and_accepts_an_existing_one() {
    let server = S3Server::start();
    let storage = storage(&server, "recordings");
    assert!(!server.data_dir().join("recordings").exists());

    storage.ensure_bucket().await.expect("create the bucket");
    assert!(server.data_dir().join("recordings").is_dir());

    // Now it exists: HEAD answers 200 and nothing is created.
    storage.ensure_bucket().await.expect("bucket already there");
}

#[tokio::test]
async fn deleting_from_a_missing_bucket_is_an_s3_error_with_its_code() {
    let server = S3Server::start();
    let storage = storage(&server, "nowhere");

    let err = storage.delete("a.webm").await.unwrap_err();
    match &err {
        StorageError::S3(f) => {
            assert_eq!(f.status, 404, "{err}");
            assert_eq!(f.code.as_deref(), Some("NoSuchBucket"), "{err}");
            assert_eq!(f.resource, "nowhere/a.webm");
        }
        other => panic!("expected an S3 error, got {other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_100_kib_file_round_trips_through_a_presigned_get() {
    let server = S3Server::start();
    let storage = storage(&server, "recordings");
    storage.ensure_bucket().await.unwrap();
    let tmp = TempDir::new("src");
    let bytes = pattern(100 * KIB, 2);
    let file = write_file(tmp.path(), "small.webm", &bytes);

    let key = "channels/42/2024-05-01T10-00-00Z.webm";
    let stored = storage.put_file(key, &file).await.expect("put_file");
    assert_eq!(stored.key, key);
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(
        stored.etag.len(),
        32,
        "a single PUT's ETag is an MD5: {}",
        stored.etag
    );
    assert_eq!(
        stored.url,
        format!("http://{}/recordings/{key}", server.addr())
    );

    let url = storage
        .presigned_get(key, Duration::from_secs(600))
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let resp = plain_get(&url).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "video/webm",
        "the stored Content-Type"
    );
    let body = resp.bytes().await.unwrap();
    assert!(body[..] == bytes[..], "the object read back differs");

    // The unsigned URL is refused: the presigned one is what grants access.
    assert_eq!(plain_get(&stored.url).await.status(), 403);
}

#[tokio::test]
async fn a_40_mib_file_is_stored_with_a_multipart_upload_and_reads_back_whole() {
    let server = S3Server::start();
    let storage = storage(&server, "recordings");
    storage.ensure_bucket().await.unwrap();
    let tmp = TempDir::new("src");
    let bytes = pattern(40 * MIB, 3);
    let file = write_file(tmp.path(), "large.webm", &bytes);

    let stored = storage
        .put_file("large.webm", &file)
        .await
        .expect("put_file");
    assert_eq!(stored.size, bytes.len() as u64);
    // Multipart ETags are `<md5 of the parts' md5s>-<parts>`: 16 + 16 + 8 MiB.
    assert!(stored.etag.ends_with("-3"), "ETag {}", stored.etag);

    let head = storage.head("large.webm").await.unwrap().expect("stored");
    assert_eq!(head.size, bytes.len() as u64);
    assert_eq!(head.etag, stored.etag);

    let url = storage
        .presigned_get("large.webm", Duration::from_secs(600))
        .unwrap();
    let body = plain_get(&url).await.bytes().await.unwrap();
    assert_eq!(body.len(), bytes.len());
    assert!(body[..] == bytes[..], "the object read back differs");
}

#[tokio::test]
async fn head_reports_stored_objects_and_delete_removes_them() {
    let server = S3Server::start();
    let storage = storage(&server, "recordings");
    storage.ensure_bucket().await.unwrap();
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "r.webm", &pattern(5 * KIB, 4));

    assert_eq!(storage.head("r.webm").await.unwrap(), None);
    let stored = storage.put_file("r.webm", &file).await.unwrap();
    let head = storage.head("r.webm").await.unwrap().expect("stored");
    assert_eq!(head, stored);

    storage.delete("r.webm").await.expect("delete");
    assert_eq!(storage.head("r.webm").await.unwrap(), None);
    let url = storage
        .presigned_get("r.webm", Duration::from_secs(60))
        .unwrap();
    assert_eq!(plain_get(&url).await.status(), 404);
    // Deleting again is not an error.
    storage.delete("r.webm").await.expect("delete again");
}

#[tokio::test]
async fn an_expired_presigned_url_is_refused() {
    let server = S3Server::start();
    let storage = storage(&server, "recordings");
    storage.ensure_bucket().await.unwrap();
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "e.webm", &pattern(KIB, 5));
    storage.put_file("e.webm", &file).await.unwrap();

    let url = storage
        .presigned_get("e.webm", Duration::from_secs(1))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(plain_get(&url).await.status(), 403);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_with_the_auth_error() {
    let server = S3Server::start();
    storage(&server, "recordings")
        .ensure_bucket()
        .await
        .unwrap();

    let mut cfg = StorageConfig::parse(&server.storage_url("recordings")).unwrap();
    cfg.credentials = Some(StorageCredentials {
        access_key: ACCESS_KEY.into(),
        secret_key: "not-the-secret".into(),
    });
    let storage = RecordingStorage::new(cfg).unwrap();

    // HEAD: 403 without a body.
    let err = storage.ensure_bucket().await.unwrap_err();
    match &err {
        StorageError::Denied(f) => assert_eq!(f.status, 403, "{err}"),
        other => panic!("expected Denied, got {other:?}"),
    }
    // PUT: the XML body says why.
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "x.webm", &pattern(KIB, 6));
    let err = storage.put_file("x.webm", &file).await.unwrap_err();
    match &err {
        StorageError::Denied(f) => {
            assert_eq!(f.status, 403, "{err}");
            assert_eq!(f.code.as_deref(), Some("SignatureDoesNotMatch"), "{err}");
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    assert!(!err.to_string().contains("not-the-secret"));
    assert!(!err.is_transient());
    assert!(!server.data_dir().join("recordings/x.webm").exists());
}

#[tokio::test]
async fn an_unknown_access_key_is_refused_with_the_auth_error() {
    let server = S3Server::start();
    let url = format!("minio://someone:{SECRET_KEY}@{}/recordings", server.addr());
    let storage = RecordingStorage::from_env(&url, &|_| None).unwrap();
    let err = storage.head("anything.webm").await.unwrap_err();
    assert!(matches!(err, StorageError::Denied(_)), "{err:?}");
}

#[tokio::test]
async fn a_stopped_server_gives_the_connection_error_within_bounded_time() {
    let mut server = S3Server::start();
    let mut cfg = StorageConfig::from_env(&server.storage_url("recordings"), &|name| match name {
        "MINIO_ROOT_USER" => Some(ACCESS_KEY.to_owned()),
        "MINIO_ROOT_PASSWORD" => Some(SECRET_KEY.to_owned()),
        _ => None,
    })
    .unwrap();
    cfg.retry = RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    };
    let storage = RecordingStorage::new(cfg).unwrap();
    storage.ensure_bucket().await.unwrap();
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "late.webm", &pattern(10 * KIB, 7));

    server.stop();
    let started = Instant::now();
    let err = storage.put_file("late.webm", &file).await.unwrap_err();
    let took = started.elapsed();
    match &err {
        StorageError::Connection { attempts, .. } => assert_eq!(*attempts, 3, "{err}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(err.is_transient());
    // Three tries, 100 + 200 ms apart: well under the bound.
    assert!(took >= Duration::from_millis(300), "no backoff: {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let text = err.to_string();
    assert!(
        !text.contains("X-Amz-Signature"),
        "signed URL in the message: {text}"
    );
    assert!(text.contains(&server.addr().to_string()), "{text}");
}

#[tokio::test]
async fn a_local_directory_stores_and_serves_files() {
    let root = TempDir::new("local-store");
    let dir = root.path().join("recordings");
    let storage =
        RecordingStorage::from_env(&format!("file://{}", dir.display()), &|_| None).unwrap();
    storage.ensure_bucket().await.unwrap();
    assert!(dir.is_dir());

    let tmp = TempDir::new("src");
    let bytes = pattern(300 * KIB, 8);
    let file = write_file(tmp.path(), "in.webm", &bytes);
    let key = "channels/7/take 1.webm";
    assert_eq!(storage.head(key).await.unwrap(), None);
    let stored = storage.put_file(key, &file).await.unwrap();
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(std::fs::read(dir.join(key)).unwrap(), bytes);
    assert_eq!(storage.head(key).await.unwrap(), Some(stored.clone()));

    let url = storage.presigned_get(key, Duration::from_secs(60)).unwrap();
    assert_eq!(url, stored.url);
    let path = reqwest::Url::parse(&url).unwrap().to_file_path().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), bytes);
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.join("channels/7"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["take 1.webm"]);

    storage.delete(key).await.unwrap();
    assert_eq!(storage.head(key).await.unwrap(), None);
    storage.delete(key).await.unwrap();
    assert!(matches!(
        storage.put_file("../escape.webm", &file).await,
        Err(StorageError::InvalidKey { .. })
    ));
}

#[test]
fn an_object_store_without_credentials_is_refused_at_set_up() {
    let err = RecordingStorage::from_env("minio://localhost:9000", &|_| None).unwrap_err();
    assert!(
        matches!(err, StorageError::MissingCredentials { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("RECORDING_ACCESS_KEY"), "{err}");
}

/// What the scripted object store below gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// UploadPart of part 2 always answers 500 InternalError.
    PartTwoFails,
    /// The first PutObject answers 503 SlowDown, later ones succeed.
    SlowDownOnce,
    /// CompleteMultipartUpload answers 200 with an `<Error>` body.
    CompleteErrorBody,
}

#[derive(Clone)]
struct Script {
    fault: Fault,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A stand-in S3 endpoint (signatures not checked) that logs each request as "<op> [part]" and
/// answers as `fault` says: for the failure paths a real server cannot be made to take.
async fn scripted_store(fault: Fault) -> (String, Script) {
    use axum::extract::{DefaultBodyLimit, State};
    use axum::http::{Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
    let error = |status: StatusCode, code: &str| -> Response {
        let body = format!(
            "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>scripted</Message></Error>"
        );
        (status, body).into_response()
    };
    let handler = move |State(script): State<Script>,
                        method: Method,
                        uri: Uri,
                        body: axum::body::Bytes| async move {
        let query = uri.query().unwrap_or("");
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let op = match (&method, param("partNumber"), query.contains("uploadId=")) {
            (&Method::POST, _, false) => "create".to_owned(),
            (&Method::PUT, Some(n), true) => format!("part {n} ({} bytes)", body.len()),
            (&Method::POST, _, true) => "complete".to_owned(),
            (&Method::DELETE, _, true) => "abort".to_owned(),
            (&Method::PUT, None, false) => format!("object ({} bytes)", body.len()),
            _ => format!("unexpected {method} {uri}"),
        };
        let earlier = {
            let mut log = script.log.lock().expect("log lock");
            let earlier = log.iter().filter(|l| **l == op).count();
            log.push(op.clone());
            earlier
        };
        let ok_etag =
            |etag: &str| (StatusCode::OK, [("etag", format!("\"{etag}\""))]).into_response();
        match op.as_str() {
            "create" => (
                StatusCode::OK,
                format!("<?xml version=\"1.0\"?><InitiateMultipartUploadResult xmlns=\"{NS}\"><Bucket>recordings</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>"),
            )
                .into_response(),
            o if o.starts_with("part 2") && script.fault == Fault::PartTwoFails => {
                error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
            o if o.starts_with("part ") => ok_etag("part-etag"),
            "complete" if script.fault == Fault::CompleteErrorBody => {
                error(StatusCode::OK, "InternalError")
            }
            "complete" => (
                StatusCode::OK,
                format!("<?xml version=\"1.0\"?><CompleteMultipartUploadResult xmlns=\"{NS}\"><ETag>\"whole-2\"</ETag></CompleteMultipartUploadResult>"),
            )
                .into_response(),
            "abort" => StatusCode::NO_CONTENT.into_response(),
            o if o.starts_with("object") && script.fault == Fault::SlowDownOnce && earlier == 0 => {
                error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
            }
            o if o.starts_with("object") => ok_etag("object-etag"),
            _ => error(StatusCode::BAD_REQUEST, "Unexpected"),
        }
    };
    let script = Script {
        fault,
        log: Default::default(),
    };
    let app = axum::Router::new()
        .fallback(handler)
        .layer(DefaultBodyLimit::disable())
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("minio://key:secret@{addr}/recordings"), script)
}

fn quick_retries(url: &str, attempts: u32) -> RecordingStorage {
    let mut cfg = StorageConfig::parse(url).expect("scripted store URL");
    cfg.retry = RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    RecordingStorage::new(cfg).expect("storage set-up")
}

#[tokio::test]
async fn a_failed_multipart_upload_is_retried_then_aborted() {
    let (url, script) = scripted_store(Fault::PartTwoFails).await;
    let storage = quick_retries(&url, 2);
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "big.webm", &pattern(17 * MIB, 9));

    let err = storage.put_file("big.webm", &file).await.unwrap_err();
    match &err {
        StorageError::S3(f) => {
            assert_eq!(
                (f.status, f.code.as_deref()),
                (500, Some("InternalError")),
                "{err}"
            );
            assert_eq!(f.op, "UploadPart");
        }
        other => panic!("expected an S3 error, got {other:?}"),
    }
    assert!(err.is_transient());
    let log = script.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "create",
            "part 1 (16777216 bytes)",
            "part 2 (1048576 bytes)",
            "part 2 (1048576 bytes)",
            "abort"
        ]
    );
}

#[tokio::test]
async fn a_complete_answering_200_with_an_error_body_fails_and_aborts() {
    let (url, script) = scripted_store(Fault::CompleteErrorBody).await;
    let storage = quick_retries(&url, 2);
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "big.webm", &pattern(17 * MIB, 10));

    let err = storage.put_file("big.webm", &file).await.unwrap_err();
    match &err {
        StorageError::S3(f) => {
            assert_eq!(
                (f.status, f.code.as_deref()),
                (200, Some("InternalError")),
                "{err}"
            );
            assert_eq!(f.op, "CompleteMultipartUpload");
        }
        other => panic!("expected an S3 error, got {other:?}"),
    }
    let log = script.log.lock().unwrap().clone();
    assert_eq!(log.last().map(String::as_str), Some("abort"), "{log:?}");
}

#[tokio::test]
async fn a_503_answer_is_retried_until_the_put_succeeds() {
    let (url, script) = scripted_store(Fault::SlowDownOnce).await;
    let storage = quick_retries(&url, 3);
    let tmp = TempDir::new("src");
    let file = write_file(tmp.path(), "s.webm", &pattern(10 * KIB, 11));

    let stored = storage
        .put_file("s.webm", &file)
        .await
        .expect("second try succeeds");
    assert_eq!(stored.etag, "object-etag");
    let log = script.log.lock().unwrap().clone();
    assert_eq!(log, ["object (10240 bytes)", "object (10240 bytes)"]);
}
