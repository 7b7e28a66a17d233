//! The S3 backend: path-style requests to an S3-compatible object store, each one a SigV4
//! presigned URL (query-string authentication), retried with backoff on transient failures.
//! Multipart uploads follow the S3 API's CreateMultipartUpload / UploadPart /
//! CompleteMultipartUpload (AbortMultipartUpload on failure).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use reqwest::{RequestBuilder, Response, StatusCode};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CompleteMultipartUploadResponse,
    CreateMultipartUpload, DeleteObject, GetObject, HeadBucket, HeadObject, PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::io::AsyncReadExt;

use super::config::{RetryPolicy, StorageConfig, StorageLocation};
use super::{MULTIPART_THRESHOLD, S3Failure, StorageError, StoredObject, content_type};

/// Lifetime of the presigned URL of one request we send (covers a slow part upload).
const REQUEST_URL_TTL: Duration = Duration::from_secs(3600);

/// S3's limit on the number of parts of one upload.
const MAX_PARTS: u64 = 10_000;

/// Error message bodies longer than this are cut (a proxy may answer with a whole HTML page).
const MAX_MESSAGE_LEN: usize = 512;

#[derive(Debug, Clone)]
pub(super) struct S3Backend {
    bucket: Bucket,
    credentials: Credentials,
    client: reqwest::Client,
    retry: RetryPolicy,
    /// `http://host:port`, for messages.
    endpoint: String,
}

impl S3Backend {
    pub(super) fn new(cfg: &StorageConfig) -> Result<Self, StorageError> {
        let StorageLocation::S3 { endpoint, bucket } = &cfg.location else {
            unreachable!("S3Backend::new is only called for an S3 location")
        };
        let endpoint_text = endpoint.as_str().trim_end_matches('/').to_owned();
        let creds = cfg
            .credentials
            .as_ref()
            .ok_or_else(|| StorageError::MissingCredentials {
                reason: format!(
                    "the object store at {endpoint_text} needs an access key and a secret: set \
                     RECORDING_ACCESS_KEY and RECORDING_SECRET_KEY (or MINIO_ROOT_USER and \
                     MINIO_ROOT_PASSWORD, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or \
                     write key:secret@ before the host"
                ),
            })?;
        let bucket = Bucket::new(
            endpoint.clone(),
            UrlStyle::Path,
            bucket.clone(),
            cfg.region.clone(),
        )
        .map_err(|e| StorageError::BadUrl {
            value: endpoint_text.clone(),
            reason: format!("no bucket URL can be made from it ({e})"),
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .build()
            .map_err(StorageError::Client)?;
        Ok(S3Backend {
            bucket,
            credentials: Credentials::new(&creds.access_key, &creds.secret_key),
            client,
            retry: RetryPolicy {
                attempts: cfg.retry.attempts.max(1),
                ..cfg.retry
            },
            endpoint: endpoint_text,
        })
    }

    pub(super) async fn ensure_bucket(&self) -> Result<(), StorageError> {
        let name = self.bucket.name();
        let resp = self
            .send("HeadBucket", || {
                let url =
                    HeadBucket::new(&self.bucket, Some(&self.credentials)).sign(REQUEST_URL_TTL);
                self.client.head(url)
            })
            .await?;
        match resp.status() {
            s if s.is_success() => return Ok(()),
            StatusCode::NOT_FOUND => {}
            _ => return Err(failure("HeadBucket", name.to_owned(), resp).await),
        }
        let resp = self
            .send("CreateBucket", || {
                let action = self.bucket.create_bucket(&self.credentials);
                let url = action.sign(REQUEST_URL_TTL);
                self.client.put(url).body(action.body())
            })
            .await?;
        if resp.status().is_success() {
            tracing::info!(bucket = name, endpoint = %self.endpoint, "created the recordings bucket");
            return Ok(());
        }
        let err = failure("CreateBucket", name.to_owned(), resp).await;
        match &err {
            // Someone (maybe another server of ours) created it in between.
            StorageError::S3(f) if f.code.as_deref() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            _ => Err(err),
        }
    }

    pub(super) async fn put_file(
        &self,
        key: &str,
        path: &Path,
    ) -> Result<StoredObject, StorageError> {
        let size = regular_file_size(path).await?;
        let etag = if size <= MULTIPART_THRESHOLD {
            self.put_single(key, path, size).await?
        } else {
            self.put_multipart(key, path, size).await?
        };
        tracing::info!(key, size, %etag, bucket = self.bucket.name(), "stored recording object");
        Ok(StoredObject {
            key: key.to_owned(),
            size,
            etag,
            url: self.bucket.object_url(key).to_string(),
        })
    }

    async fn put_single(&self, key: &str, path: &Path, size: u64) -> Result<String, StorageError> {
        let body = Bytes::from(
            tokio::fs::read(path)
                .await
                .map_err(|e| StorageError::io("read", path, e))?,
        );
        if body.len() as u64 != size {
            return Err(StorageError::io(
                "read",
                path,
                std::io::Error::other("the file changed size while being stored"),
            ));
        }
        let resp = self
            .send("PutObject", || {
                let url = PutObject::new(&self.bucket, Some(&self.credentials), key)
                    .sign(REQUEST_URL_TTL);
                self.client
                    .put(url)
                    .header(CONTENT_TYPE, content_type(key))
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(failure("PutObject", self.resource(key), resp).await);
        }
        etag_of("PutObject", &resp)
    }

    async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        size: u64,
    ) -> Result<String, StorageError> {
        let resp = self
            .send("CreateMultipartUpload", || {
                let url = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key)
                    .sign(REQUEST_URL_TTL);
                self.client
                    .post(url)
                    .header(CONTENT_TYPE, content_type(key))
                    .body(Bytes::new())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(failure("CreateMultipartUpload", self.resource(key), resp).await);
        }
        let body = read_text("CreateMultipartUpload", resp).await?;
        let created = CreateMultipartUpload::parse_response(&body).map_err(|e| {
            StorageError::BadResponse {
                op: "CreateMultipartUpload",
                detail: format!("no upload id in the answer ({e})"),
            }
        })?;
        let upload_id = created.upload_id();

        let outcome = async {
            let etags = self.upload_parts(key, path, size, upload_id).await?;
            self.complete(key, upload_id, &etags).await
        }
        .await;
        if outcome.is_err() {
            self.abort(key, upload_id).await;
        }
        outcome
    }

    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<String>, StorageError> {
        let part_size = part_size(size);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| StorageError::io("open", path, e))?;
        let mut etags = Vec::new();
        let mut offset = 0u64;
        let mut number = 0u16;
        while offset < size {
            number += 1;
            let len = part_size.min(size - offset);
            let len_usize = usize::try_from(len).map_err(|_| {
                StorageError::io(
                    "read",
                    path,
                    std::io::Error::other("part larger than memory"),
                )
            })?;
            let mut buf = vec![0u8; len_usize];
            file.read_exact(&mut buf)
                .await
                .map_err(|e| StorageError::io("read", path, e))?;
            let body = Bytes::from(buf);
            let resp = self
                .send("UploadPart", || {
                    let url = UploadPart::new(
                        &self.bucket,
                        Some(&self.credentials),
                        key,
                        number,
                        upload_id,
                    )
                    .sign(REQUEST_URL_TTL);
                    self.client.put(url).body(body.clone())
                })
                .await?;
            if !resp.status().is_success() {
                return Err(failure("UploadPart", self.resource(key), resp).await);
            }
            // CompleteMultipartUpload wants the ETags as the parts' answers gave them.
            let etag = resp
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| StorageError::BadResponse {
                    op: "UploadPart",
                    detail: format!("no ETag for part {number}"),
                })?;
            etags.push(etag.to_owned());
            offset += len;
        }
        Ok(etags)
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<String, StorageError> {
        let resp = self
            .send("CompleteMultipartUpload", || {
                let action = CompleteMultipartUpload::new(
                    &self.bucket,
                    Some(&self.credentials),
                    key,
                    upload_id,
                    etags.iter().map(String::as_str),
                );
                let url = action.sign(REQUEST_URL_TTL);
                self.client.post(url).body(action.body())
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(failure("CompleteMultipartUpload", self.resource(key), resp).await);
        }
        // S3 may answer 200 and still fail, with an <Error> body.
        let body = read_text("CompleteMultipartUpload", resp).await?;
        if let Some((code, message)) = parse_error(&body) {
            return Err(classify(S3Failure {
                op: "CompleteMultipartUpload",
                resource: self.resource(key),
                status: status.as_u16(),
                code,
                message,
            }));
        }
        let done = CompleteMultipartUploadResponse::parse(&body).map_err(|e| {
            StorageError::BadResponse {
                op: "CompleteMultipartUpload",
                detail: format!("unreadable answer ({e})"),
            }
        })?;
        Ok(done.etag().trim_matches('"').to_owned())
    }

    /// Best effort: the parts of an upload neither completed nor aborted take space until a
    /// lifecycle rule removes them.
    async fn abort(&self, key: &str, upload_id: &str) {
        let result = self
            .send("AbortMultipartUpload", || {
                let url = AbortMultipartUpload::new(
                    &self.bucket,
                    Some(&self.credentials),
                    key,
                    upload_id,
                )
                .sign(REQUEST_URL_TTL);
                self.client.delete(url)
            })
            .await;
        match result {
            Ok(resp) if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND => {}
            Ok(resp) => {
                let err = failure("AbortMultipartUpload", self.resource(key), resp).await;
                tracing::warn!(key, upload_id, %err, "could not abort a failed multipart upload");
            }
            Err(err) => {
                tracing::warn!(key, upload_id, %err, "could not abort a failed multipart upload")
            }
        }
    }

    pub(super) fn presigned_get(&self, key: &str, ttl: Duration) -> String {
        GetObject::new(&self.bucket, Some(&self.credentials), key)
            .sign(ttl)
            .to_string()
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<StoredObject>, StorageError> {
        let resp = self
            .send("HeadObject", || {
                let url = HeadObject::new(&self.bucket, Some(&self.credentials), key)
                    .sign(REQUEST_URL_TTL);
                self.client.head(url)
            })
            .await?;
        if !resp.status().is_success() {
            let not_found = resp.status() == StatusCode::NOT_FOUND;
            let err = failure("HeadObject", self.resource(key), resp).await;
            // A HEAD answer has no body to tell a missing key from a missing bucket; MinIO's
            // error code header does.
            return match &err {
                StorageError::S3(f) if not_found && f.code.as_deref() != Some("NoSuchBucket") => {
                    Ok(None)
                }
                _ => Err(err),
            };
        }
        // A HEAD answer has no body, so `Response::content_length` says 0: read the header.
        let size = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StorageError::BadResponse {
                op: "HeadObject",
                detail: "no Content-Length".into(),
            })?;
        Ok(Some(StoredObject {
            key: key.to_owned(),
            size,
            etag: etag_of("HeadObject", &resp)?,
            url: self.bucket.object_url(key).to_string(),
        }))
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let resp = self
            .send("DeleteObject", || {
                let url = DeleteObject::new(&self.bucket, Some(&self.credentials), key)
                    .sign(REQUEST_URL_TTL);
                self.client.delete(url)
            })
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        // S3 answers 204 for a missing key; a 404 is a missing bucket (or a store that says
        // NoSuchKey, which is fine).
        let err = failure("DeleteObject", self.resource(key), resp).await;
        match &err {
            StorageError::S3(f) if f.code.as_deref() == Some("NoSuchKey") => Ok(()),
            _ => Err(err),
        }
    }

    fn resource(&self, key: &str) -> String {
        format!("{}/{key}", self.bucket.name())
    }

    /// Sends the request `make` builds (signed anew for each try), retrying connection errors,
    /// timeouts and 5xx answers with backoff. Any other answer is returned as it is.
    async fn send(
        &self,
        op: &'static str,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, StorageError> {
        let mut attempt = 1;
        loop {
            let outcome = make().send().await;
            let transient = match &outcome {
                Ok(resp) => resp.status().is_server_error(),
                Err(e) => !e.is_builder(),
            };
            if !transient || attempt >= self.retry.attempts {
                return outcome.map_err(|e| {
                    // The URL holds a signature that grants access until it expires: keep it
                    // out of messages and logs.
                    let source = e.without_url();
                    StorageError::Connection {
                        op,
                        endpoint: self.endpoint.clone(),
                        attempts: attempt,
                        detail: error_chain(&source),
                        source,
                    }
                });
            }
            let wait = self.retry.backoff(attempt);
            match &outcome {
                Ok(resp) => {
                    tracing::warn!(op, status = %resp.status(), attempt, ?wait, "object store failed; retrying")
                }
                Err(e) => {
                    tracing::warn!(op, error = %error_chain(e), attempt, ?wait, "object store unreachable; retrying")
                }
            }
            drop(outcome);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Part size for a multipart upload of `size` bytes: [`MULTIPART_THRESHOLD`], or larger (whole
/// MiB) when that would take more than 10 000 parts.
fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(MULTIPART_THRESHOLD)
}

async fn regular_file_size(path: &Path) -> Result<u64, StorageError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| StorageError::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(StorageError::io(
            "stat",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    Ok(meta.len())
}

fn etag_of(op: &'static str, resp: &Response) -> Result<String, StorageError> {
    resp.headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or_else(|| StorageError::BadResponse {
            op,
            detail: "no ETag".into(),
        })
}

async fn read_text(op: &'static str, resp: Response) -> Result<String, StorageError> {
    resp.text().await.map_err(|e| StorageError::BadResponse {
        op,
        detail: format!(
            "the answer's body could not be read ({})",
            error_chain(&e.without_url())
        ),
    })
}

/// Turns an error answer into [`StorageError::Denied`] or [`StorageError::S3`], with the Code
/// and Message of its XML body (or MinIO's `x-minio-error-code` header for bodiless HEAD answers).
async fn failure(op: &'static str, resource: String, resp: Response) -> StorageError {
    let status = resp.status().as_u16();
    let header_code = ["x-minio-error-code", "x-amz-error-code"]
        .iter()
        .find_map(|h| resp.headers().get(*h)?.to_str().ok().map(str::to_owned));
    let body = resp.text().await.unwrap_or_default();
    let (code, message) = parse_error(&body).unwrap_or((None, None));
    classify(S3Failure {
        op,
        resource,
        status,
        code: code.or(header_code),
        message,
    })
}

fn classify(f: S3Failure) -> StorageError {
    if f.is_auth() {
        StorageError::Denied(f)
    } else {
        StorageError::S3(f)
    }
}

/// The `Code` and `Message` of an S3 `<Error>` document, or `None` when `body` is not one.
fn parse_error(body: &str) -> Option<(Option<String>, Option<String>)> {
    let error = element(body, "Error")?;
    let text = |name| {
        element(error, name)
            .map(|t| unescape(t.trim()))
            .filter(|t| !t.is_empty())
    };
    let message = text("Message").map(|mut m| {
        if m.len() > MAX_MESSAGE_LEN {
            let mut cut = MAX_MESSAGE_LEN;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push('…');
        }
        m
    });
    Some((text("Code"), message))
}

/// The content of the first `<name>...</name>` element (no attributes expected).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The error and its causes, `: `-joined (reqwest's own message alone says only "error sending
/// request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_documents_give_code_and_message() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key &amp; signing method.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        let (code, message) = parse_error(body).unwrap();
        assert_eq!(code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(
            message.as_deref(),
            Some(
                "The request signature we calculated does not match the signature you provided. Check your key & signing method."
            )
        );
        assert_eq!(
            parse_error("<Error><Code>NoSuchKey</Code></Error>").unwrap(),
            (Some("NoSuchKey".into()), None)
        );
        assert_eq!(parse_error(""), None);
        assert_eq!(parse_error("<html>bad gateway</html>"), None);
        assert_eq!(parse_error("<Error><Code>unterminated"), None);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let body = format!("<Error><Message>{}</Message></Error>", "é".repeat(600));
        let (_, message) = parse_error(&body).unwrap();
        let message = message.unwrap();
        assert!(message.len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
        assert!(message.ends_with('…'));
    }

    #[test]
    fn parts_are_16_mib_until_10000_of_them_would_not_hold_the_file() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size(40 * MIB), 16 * MIB);
        assert_eq!(part_size(10_000 * 16 * MIB), 16 * MIB);
        let big = 10_000 * 16 * MIB + 1;
        let p = part_size(big);
        assert_eq!(p, 17 * MIB);
        assert!(big.div_ceil(p) <= MAX_PARTS);
        let huge = 5 * 1024 * 1024 * MIB; // 5 TiB, S3's object size limit
        assert!(huge.div_ceil(part_size(huge)) <= MAX_PARTS);
    }
}
