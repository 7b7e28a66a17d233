//! Recording storage: finished recordings are stored in an S3-compatible object store (MinIO, AWS
//! S3, any server speaking the S3 REST API with path-style addressing) or in a local directory.
//! Every S3 request is an AWS Signature Version 4 presigned URL (query-string authentication,
//! signed by `rusty-s3`), the same kind of URL [`RecordingStorage::presigned_get`] hands out.

mod config;
mod local;
mod s3;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::{
    ACCEPTED_FORMS, DEFAULT_BUCKET, DEFAULT_REGION, RetryPolicy, StorageConfig, StorageCredentials,
    StorageLocation,
};

/// Files up to this size are stored with one PUT; larger ones with a multipart upload whose
/// parts are this size (larger when the file would need more than 10 000 parts).
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;

/// The longest lifetime S3 accepts for a presigned URL (7 days).
pub const MAX_PRESIGNED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The RECORDING_STORAGE value is not one of the accepted forms (secrets in it are masked).
    #[error(
        "RECORDING_STORAGE={value:?} is not usable: {reason}; accepted forms: {ACCEPTED_FORMS}"
    )]
    BadUrl { value: String, reason: String },
    /// An object store needs credentials and none (or half a pair) were given.
    #[error("no object store credentials: {reason}")]
    MissingCredentials { reason: String },
    /// The object key cannot name an object (empty, `.`/`..` segments, ...).
    #[error("object key {key:?} is not usable: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// A presigned URL lifetime outside 1 s ..= 7 days.
    #[error("presigned URL lifetime {0:?} is outside 1 s ..= 7 days")]
    InvalidTtl(Duration),
    /// No HTTP exchange completed: connection refused, host unreachable, timeout, reset. Retried
    /// `attempts` times before giving up.
    #[error("cannot reach the object store at {endpoint} ({op}, {attempts} attempts): {detail}")]
    Connection {
        op: &'static str,
        endpoint: String,
        attempts: u32,
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    /// The object store refused the credentials or the signature (HTTP 403, or an S3 error code
    /// such as `SignatureDoesNotMatch` or `InvalidAccessKeyId`).
    #[error("the object store refused the credentials: {0}")]
    Denied(S3Failure),
    /// Any other S3 error response.
    #[error("the object store answered with an error: {0}")]
    S3(S3Failure),
    /// A successful status with a body that makes no sense (no upload id, no ETag, ...).
    #[error("{op}: unexpected answer from the object store: {detail}")]
    BadResponse { op: &'static str, detail: String },
    /// Reading the file to store, or the local directory backend, failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl StorageError {
    /// Whether trying again later may succeed: the store was unreachable or answered 5xx.
    /// (Each operation has already retried these a few times with backoff.)
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Connection { .. } => true,
            StorageError::S3(f) => f.status >= 500,
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An S3 error response: HTTP status plus the `Code` and `Message` of its XML body (HEAD
/// responses have no body, so both may be missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Failure {
    /// The S3 operation, e.g. `PutObject`.
    pub op: &'static str,
    /// `bucket` or `bucket/key`.
    pub resource: String,
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl S3Failure {
    /// Whether this is the store refusing who we are rather than what we asked.
    pub fn is_auth(&self) -> bool {
        self.status == 403
            || matches!(
                self.code.as_deref(),
                Some(
                    "AccessDenied"
                        | "SignatureDoesNotMatch"
                        | "InvalidAccessKeyId"
                        | "ExpiredToken"
                        | "InvalidToken"
                        | "AuthorizationQueryParametersError"
                )
            )
    }
}

impl fmt::Display for S3Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: HTTP {}", self.op, self.resource, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The store's entity tag, without quotes (S3: an MD5 for single PUTs, `<md5>-<parts>` for
    /// multipart uploads; local directory: size and modification time).
    pub etag: String,
    /// The object's unsigned URL (`http(s)://host/bucket/key` or `file:///dir/key`); reading it
    /// from an object store needs [`RecordingStorage::presigned_get`].
    pub url: String,
}

/// Stores recordings in the place a [`StorageConfig`] names.
#[derive(Debug, Clone)]
pub struct RecordingStorage {
    location: StorageLocation,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    S3(Box<s3::S3Backend>),
    Local(local::LocalBackend),
}

impl RecordingStorage {
    /// Sets up the storage (no I/O yet). An object store needs credentials.
    pub fn new(cfg: StorageConfig) -> Result<Self, StorageError> {
        let backend = match &cfg.location {
            StorageLocation::S3 { .. } => Backend::S3(Box::new(s3::S3Backend::new(&cfg)?)),
            StorageLocation::Local { dir } => Backend::Local(local::LocalBackend::new(dir.clone())),
        };
        Ok(RecordingStorage {
            location: cfg.location,
            backend,
        })
    }

    /// [`StorageConfig::from_env`] then [`RecordingStorage::new`].
    pub fn from_env(
        value: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, StorageError> {
        Self::new(StorageConfig::from_env(value, env)?)
    }

    /// Where objects go.
    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// Makes sure the bucket (or directory) exists: HEAD bucket, and create it when the store
    /// answers 404.
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::S3(b) => b.ensure_bucket().await,
            Backend::Local(b) => b.ensure_dir().await,
        }
    }

    /// Stores the file at `path` under `key`: one PUT up to [`MULTIPART_THRESHOLD`], a multipart
    /// upload above (aborted when any step fails). `.webm` keys get `Content-Type: video/webm`.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<StoredObject, StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::S3(b) => b.put_file(key, path).await,
            Backend::Local(b) => b.put_file(key, path).await,
        }
    }

    /// A URL anyone can GET the object with for `ttl` (1 s ..= 7 days). For a local directory
    /// this is the object's `file://` URL (no lifetime applies).
    pub fn presigned_get(&self, key: &str, ttl: Duration) -> Result<String, StorageError> {
        check_key(key)?;
        if ttl < Duration::from_secs(1) || ttl > MAX_PRESIGNED_TTL {
            return Err(StorageError::InvalidTtl(ttl));
        }
        match &self.backend {
            Backend::S3(b) => Ok(b.presigned_get(key, ttl)),
            Backend::Local(b) => b.object_url(key),
        }
    }

    /// The object's size and ETag, or `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<StoredObject>, StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::S3(b) => b.head(key).await,
            Backend::Local(b) => b.head(key).await,
        }
    }

    /// Deletes the object; deleting an object that does not exist succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        check_key(key)?;
        match &self.backend {
            Backend::S3(b) => b.delete(key).await,
            Backend::Local(b) => b.delete(key).await,
        }
    }
}

/// Object keys are relative `/`-separated paths: not empty, at most 1024 bytes, no empty, `.` or
/// `..` segment, no control character or backslash. The same rule for both backends, so a key
/// that works with one works with the other (and cannot escape the bucket or directory).
fn check_key(key: &str) -> Result<(), StorageError> {
    let reason = if key.is_empty() {
        Some("empty")
    } else if key.len() > 1024 {
        Some("longer than 1024 bytes")
    } else if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        Some("has an empty, `.` or `..` path segment")
    } else if key.chars().any(|c| c.is_control() || c == '\\') {
        Some("contains a control character or a backslash")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StorageError::InvalidKey {
            key: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The Content-Type stored with an object, from its key's extension.
fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_or_name_the_bucket_are_refused() {
        for bad in [
            "",
            "/abs.webm",
            "a//b.webm",
            "a/../b.webm",
            "./a.webm",
            "..",
            "dir/",
            "a\\b",
            "a\nb",
        ] {
            assert!(
                matches!(check_key(bad), Err(StorageError::InvalidKey { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(check_key(&"k".repeat(1025)).is_err());
        for good in [
            "rec.webm",
            "channels/42/2024-01-01T00-00-00Z.webm",
            "with space/ü.webm",
            "a..b",
        ] {
            assert!(check_key(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn webm_keys_are_stored_as_video_webm() {
        assert_eq!(content_type("c/1.webm"), "video/webm");
        assert_eq!(content_type("c/1.WEBM"), "video/webm");
        assert_eq!(content_type("c/meta.json"), "application/json");
        assert_eq!(content_type("c/noext"), "application/octet-stream");
    }

    #[test]
    fn auth_failures_are_told_apart_from_other_s3_errors() {
        let f = |status, code: Option<&str>| S3Failure {
            op: "PutObject",
            resource: "b/k".into(),
            status,
            code: code.map(str::to_owned),
            message: None,
        };
        assert!(f(403, None).is_auth());
        assert!(f(400, Some("InvalidAccessKeyId")).is_auth());
        assert!(!f(404, Some("NoSuchKey")).is_auth());
        assert!(!f(500, Some("InternalError")).is_auth());
        let shown = f(403, Some("SignatureDoesNotMatch")).to_string();
        assert_eq!(shown, "PutObject b/k: HTTP 403 SignatureDoesNotMatch");
    }
}
